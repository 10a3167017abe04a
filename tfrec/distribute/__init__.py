"""Fitting beyond one process with ``tf.distribute``: which worker this is and the
strategies (``cluster``), combining the fixed-weight models' partial state across workers
(``collectives``), each worker's shard of the data (``sharding``), and the
``--local-workers`` launcher (``launcher``)."""

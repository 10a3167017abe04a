"""Export: fitted models to SavedModels in TF Serving's layout."""
from tfrec.export.savedmodel import CATALOG_ASSET, METADATA_ASSET, export_model, versions

__all__ = ["CATALOG_ASSET", "METADATA_ASSET", "export_model", "versions"]

"""Where the server keeps files: uploads, datasets, session work dirs, logs, checkpoints.

The services talk to :class:`ArtifactStore`; :class:`FileArtifactStore` keeps everything
under ``NSML_HOME``. An object-store backend would implement the same interface.
"""

from nsml.artifacts.base import ArtifactStore, BadArchive, BadUploadId, UnpackTooLarge, UploadTooLarge
from nsml.artifacts.filesystem import FileArtifactStore

__all__ = [
    "ArtifactStore",
    "BadArchive",
    "BadUploadId",
    "FileArtifactStore",
    "UnpackTooLarge",
    "UploadTooLarge",
]

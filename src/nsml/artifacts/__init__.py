"""Where the server keeps files: uploads, datasets, session work dirs, logs, checkpoints.

The services talk to :class:`ArtifactStore`; :class:`FileArtifactStore` keeps everything
under ``NSML_HOME``. An object-store backend would implement the same interface.
"""

from nsml.artifacts.base import ArtifactStore, BadArchive, UnpackTooLarge, UploadTooLarge
from nsml.artifacts.filesystem import FileArtifactStore

__all__ = ["ArtifactStore", "BadArchive", "FileArtifactStore", "UnpackTooLarge", "UploadTooLarge"]

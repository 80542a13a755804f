"""kortext: Korean text processing for OpenNSML missions (jamo, normalisation, tokenizers,
embeddings). It does not depend on the platform; only the embedding cache uses ``nsml`` when
running inside a platform session."""

__all__ = ["jamo", "normalize", "tokenizers"]

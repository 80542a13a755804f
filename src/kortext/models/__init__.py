"""The kortext models: small PyTorch modules over integer id tensors, and TF-IDF baselines.

Every neural model's ``forward`` returns one logit (binary) or value (regression) per row
when ``num_outputs == 1``, else one row of logits, so ``kortext.training.fit`` trains them all.
"""

from kortext.models.esim import ESIM
from kortext.models.mlp_baseline import CharMLP
from kortext.models.rnn import AttentionPooling, RNNClassifier, RNNEncoder
from kortext.models.siamese import SiameseClassifier
from kortext.models.textcnn import TextCNN

__all__ = [
    "ESIM",
    "AttentionPooling",
    "CharMLP",
    "RNNClassifier",
    "RNNEncoder",
    "SiameseClassifier",
    "TextCNN",
]

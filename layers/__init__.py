"""Capsule math: squash, routing, capsule layers, decoder, losses and accuracy counts."""

from layers.capsules import Capsule, ConvCapsule
from layers.decoder import Decoder
from layers.losses import (classification_loss, correct_and_almost, margin_loss, model_losses,
                           reconstruction_loss)
from layers.routing import route, safe_norm, squash

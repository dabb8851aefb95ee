"""Training only the top of a model (`train.trainable_layers` of the reward, DPO and PPO value models)."""

from __future__ import annotations

from torch import nn

from chatalign.errors import UserError


def train_top_layers(model: nn.Module, decoder: nn.Module, head: nn.Module, trainable_layers: int) -> list[str]:
    """Train only the top `trainable_layers` layers of `decoder`, its final norm and `head`; return the names
    of `model`'s trainable parameters.

    The embeddings stay frozen, and with them a head tied to them. Autograd then builds no graph below the
    lowest trainable layer, so the backward pass costs only the top layers (a forward of 30 layers plus a
    backward of 6 is about half of a full training step)."""
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise UserError(f"train.trainable_layers: {type(decoder).__name__} has no `layers` list to choose from")
    if trainable_layers > len(layers):
        raise UserError(f"train.trainable_layers={trainable_layers}, but the model has {len(layers)} layers")
    keep = [*layers[len(layers) - trainable_layers:], getattr(decoder, "norm", None), head]
    trained = {id(p) for module in keep if module is not None for p in module.parameters()}
    trained -= {id(p) for p in decoder.get_input_embeddings().parameters()}  # a tied head stays frozen
    names = []
    for name, p in model.named_parameters():
        p.requires_grad_(id(p) in trained)
        if p.requires_grad:
            names.append(name)
    return names

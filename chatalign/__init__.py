"""chatalign: a Llama 2-Chat style alignment pipeline (SFT, reward models, RLHF, GAtt, safety)."""

__version__ = "0.1.0"

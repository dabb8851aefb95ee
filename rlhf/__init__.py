"""chatalign.rlhf"""

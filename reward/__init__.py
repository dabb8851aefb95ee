"""chatalign.reward"""

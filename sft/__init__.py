"""chatalign.sft"""

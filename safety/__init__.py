"""chatalign.safety"""

"""chatalign.gatt"""

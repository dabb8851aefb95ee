"""chatalign.data_schemas"""

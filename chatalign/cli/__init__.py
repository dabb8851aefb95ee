"""The `chatalign` command line: `main` in main.py, one module per command family."""

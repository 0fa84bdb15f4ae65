"""Distillation: one trainer (`trainer.py`), many methods (`accvideo_method.py`, ...)."""

"""Scale-out: data-parallel training under torchrun, translation in parts, assembling parts.
"""

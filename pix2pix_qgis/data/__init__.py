"""Stage 2, chips folder → tensors: the folder checked and described, normalisation,
the dataset, sampling order and the one dihedral augmentation.
"""

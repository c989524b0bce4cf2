"""The contract between training and translation: networks, the model package and
checkpoint (pickle-free zips), device choice and memory guards.
"""

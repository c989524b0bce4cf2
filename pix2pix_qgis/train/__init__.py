"""Stage 3, training: options, losses, the trainer's step, the loop (one process is the
N = 1 case of data-parallel), figures and the HTML report.
"""

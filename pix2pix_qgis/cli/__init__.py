"""The command line: entry point (no heavy imports), argument parsing, commands, exit codes.
"""

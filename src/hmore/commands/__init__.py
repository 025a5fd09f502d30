"""Subcommands of the ``hmore`` command line (one module each, see ``hmore.cli``)."""

"""hmore's models. Importing this package registers every built-in model builder (see ``hmore.registry``)."""

from hmore.models import flow, gait, motion, video  # noqa: F401  (imported for registration)

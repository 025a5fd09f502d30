"""Motion concept models (HuMoCon): the concept model and the question answerer; importing registers the builders."""

from hmore.models.concepts import model, qa  # noqa: F401  (imported for registration)

"""A run's parameters are the fields of a frozen dataclass; `knob` declares one. The schemas
(labkit.config) gather the core fields and those of the extensions (a loss term's weight, a swap
variant's temperature): each parameter is declared once, beside what reads it."""

from dataclasses import field


def knob(
    default, help: str = "", *, choices=(), at_least=None, above=None, computes: bool = True, required: bool = False
):
    """A parameter: `choices` are its allowed values, `at_least` / `above` its lower bound,
    `required` a text that may not be empty; `computes=False` marks one that changes where or how
    fast a run computes, not what (a resumed run may change it)."""
    metadata = {"help": help, "choices": tuple(choices), "at_least": at_least, "above": above, "computes": computes}
    return field(default=default, metadata={**metadata, "required": required})

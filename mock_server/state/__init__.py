"""The tenant world: plain objects and the rules over them, with no Flask imports."""

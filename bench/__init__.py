"""`make bench`: hexpost under load beside the ceilings it is measured against (see README)."""

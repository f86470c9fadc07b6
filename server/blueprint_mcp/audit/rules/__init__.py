"""Importing this package registers every rule."""

from . import api_rules, meta_rules, platform_rules, policy_rules, schema_rules, spec_rules, tenancy_rules  # noqa: F401

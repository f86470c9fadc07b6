"""Importing this package registers every rule."""

from . import (  # noqa: F401
    api_rules, claims_rules, helper_rules, meta_rules, partition_rules, platform_rules, policy_rules, reach_rules,
    schema_rules, spec_rules, tenancy_rules,
)

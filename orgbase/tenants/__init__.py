"""Orgs, memberships, roles, invitations, the per-request OrgContext, versioned settings."""

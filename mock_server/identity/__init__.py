"""Entra ID: the token endpoint (v2 and v1), discovery, JWKS and instance discovery."""

"""The sandbox's SIMS ID: a token endpoint issuing RS256 access tokens by the client
credentials grant, with discovery and a JWKS."""

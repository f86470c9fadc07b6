"""Proof on a real PostgreSQL: throwaway clusters, the Supabase auth shim, attacks and pgTAP."""

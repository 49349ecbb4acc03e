"""Development tools shipped with the library: loopback stand-ins for what cannot be
reached from a development machine (public DNS)."""

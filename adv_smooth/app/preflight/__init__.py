"""Start-up checks of a composed config that no single object can make: cross-key rules, sweeps, targets."""

"""The package version. Run ids carry it: a release that changes recorded numbers bumps it, so an
upgraded autophagy never silently reuses rows an older version wrote (see ``autophagy.spec``)."""
__version__ = "0.3.0"

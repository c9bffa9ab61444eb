"""Generated gRPC API of SkyTwin (see proto/generate.py); do not edit."""

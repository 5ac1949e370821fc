"""Object storage: the one S3 interface (keys built from internal ids only) and the embedded
SeaweedFS with its security configuration."""

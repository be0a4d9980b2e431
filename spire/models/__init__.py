"""Model zoo: a timm-style registry, one file per architecture (HRPE family, SSHD-Net)."""

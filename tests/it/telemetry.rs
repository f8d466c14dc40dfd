//! Telemetry on two real sshd "Sparks".

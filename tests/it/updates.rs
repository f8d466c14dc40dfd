//! Launcher updates on two real sshd "Sparks".

package api

// Version is meshinit's release, stamped at build time with
// -ldflags "-X github.com/meshinit/meshinit/api.Version=v1.2.3".
var Version = "v0.1.0-dev"

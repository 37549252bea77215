// Package testconfig gives tests the injector's configuration of an empty environment: what a
// cluster gets with no KUMA_RUNTIME_* variable set.
package testconfig

import "github.com/meshinit/meshinit/config"

// Default returns the configuration of an empty environment; it panics if the settings' declared
// defaults are invalid, which config's own tests catch first.
func Default() *config.Config {
	c, _, err := config.Load(nil)
	if err != nil {
		panic("testconfig: the settings' declared defaults are invalid: " + err.Error())
	}
	return c
}

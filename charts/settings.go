package charts

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshinit/meshinit/config"
)

// InjectorContainer is the name of the injector's container in the chart's Deployment.
const InjectorContainer = "injector"

// InjectorEnvironment returns the literal environment ("NAME=value") of the injector's container
// in rendered objects, or nil when they deploy no injector (webhook.url).
func InjectorEnvironment(objs []*unstructured.Unstructured) ([]string, error) {
	d, err := Typed[appsv1.Deployment](objs, "Deployment", "")
	if err != nil || d == nil {
		return nil, err
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != InjectorContainer {
			continue
		}
		environ := []string{}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				environ = append(environ, e.Name+"="+e.Value)
			}
		}
		return environ, nil
	}
	return nil, fmt.Errorf("rendered Deployment %s has no %s container", d.Name, InjectorContainer)
}

// CheckSettings loads the injector's rendered KUMA_RUNTIME_* settings as the injector will at
// start, so that a value it would refuse fails the render instead of the rollout. It returns the
// injector's warnings (an unknown KUMA_ variable, say).
func CheckSettings(objs []*unstructured.Unstructured) ([]string, error) {
	environ, err := InjectorEnvironment(objs)
	if err != nil || environ == nil {
		return nil, err
	}
	_, warnings, err := config.Load(environ)
	if err != nil {
		return warnings, fmt.Errorf("the injector would refuse these settings (from dataPlane, cni or controlPlane.envVars):\n%w", err)
	}
	return warnings, nil
}

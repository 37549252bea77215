package multus

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/meshinit/meshinit/api"
)

// TestReconcile covers what the API server seldom shows: a definition created meanwhile by
// someone else, a namespace starting to terminate, other failures.
func TestReconcile(t *testing.T) {
	labelledNS := corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app", Labels: map[string]string{api.LabelSidecarInjection: "disabled"}}}
	terminating := *labelledNS.DeepCopy()
	terminating.DeletionTimestamp = ptr.To(metav1.Now())
	terminating.Finalizers = []string{"kubernetes"}
	unlabelled := *labelledNS.DeepCopy()
	unlabelled.Labels = map[string]string{"kuma.io/mesh": "default"}
	gr := schema.GroupResource{Group: definitionKind.Group, Resource: definitionResource}
	nsTerminating := &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonForbidden,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}}}}

	for _, tc := range []struct {
		name      string
		ns        corev1.Namespace
		existing  bool
		createErr error
		creates   bool
		wantErr   bool
	}{
		{name: "labelled, none yet", ns: labelledNS, creates: true},
		{name: "labelled, one there", ns: labelledNS, existing: true},
		{name: "created meanwhile", ns: labelledNS, createErr: apierrors.NewAlreadyExists(gr, NetworkName), creates: true},
		{name: "namespace terminating meanwhile", ns: labelledNS, createErr: nsTerminating, creates: true},
		{name: "create fails", ns: labelledNS, createErr: errors.New("etcd is down"), creates: true, wantErr: true},
		{name: "terminating", ns: terminating},
		{name: "unlabelled", ns: unlabelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var created []client.Object
			c := fake.NewClientBuilder().WithObjects(&tc.ns).WithInterceptorFuncs(interceptor.Funcs{
				Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					if _, ok := obj.(*metav1.PartialObjectMetadata); !ok {
						return c.Get(ctx, key, obj, opts...)
					}
					if tc.existing {
						return nil
					}
					return apierrors.NewNotFound(gr, key.Name)
				},
				Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
					created = append(created, obj)
					return tc.createErr
				},
			}).Build()
			r := &reconciler{client: c}
			_, err := r.Reconcile(log.IntoContext(t.Context(), testr.New(t)), reconcile.Request{NamespacedName: types.NamespacedName{Name: "app"}})
			if (err != nil) != tc.wantErr {
				t.Errorf("Reconcile: %v, want an error: %v", err, tc.wantErr)
			}
			if (len(created) == 1) != tc.creates || len(created) > 1 {
				t.Errorf("created %d definitions, want one: %v", len(created), tc.creates)
			}
		})
	}
}

func TestDefinition(t *testing.T) {
	got, err := json.Marshal(definition("app"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition",` +
		`"metadata":{"labels":{"app.kubernetes.io/managed-by":"meshinit"},"name":"kuma-cni","namespace":"app"},"spec":{}}`
	if string(got) != want {
		t.Errorf("definition:\n%s\nwant\n%s", got, want)
	}
}

func TestCacheOptions(t *testing.T) {
	if opts := CacheOptions(false); opts.ByObject != nil {
		t.Errorf("disabled, CacheOptions restricts %v", opts.ByObject)
	}
	opts := CacheOptions(true)
	if len(opts.ByObject) != 1 {
		t.Fatalf("CacheOptions restricts %d kinds, want one", len(opts.ByObject))
	}
	for obj, by := range opts.ByObject {
		if obj.GetObjectKind().GroupVersionKind() != definitionKind || by.Field.String() != "metadata.name=kuma-cni" {
			t.Errorf("CacheOptions restricts %v to %v", obj.GetObjectKind().GroupVersionKind(), by.Field)
		}
	}
}

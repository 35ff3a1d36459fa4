import { parseDocument } from 'yaml';

/**
 * The annotation a recovery puts on every static-pod manifest it puts back: its run key. The kubelet derives a static
 * pod's UID from the manifest's content, so a manifest put back byte-for-byte would bring back the pod the kubelet
 * has just stopped, under the same UID, with that pod's crash back-off (measured: up to ~15 s in CrashLoopBackOff
 * before etcd or kube-apiserver even starts). With the annotation the kubelet sees a new pod and starts it at once.
 * The rest of the manifest means the same as the user wrote it (comments kept, in kubeadm's YAML style); the originals
 * stay, untouched, in the run's manifests-before folder.
 */
export const RECOVERY_ANNOTATION = 'lifeboat/recovery';

/**
 * The manifest text with metadata.annotations[RECOVERY_ANNOTATION] = run. YAML keeps its comments; JSON stays JSON.
 * Anything that does not parse as one mapping is returned unchanged (`annotated: false`): the kubelet will report it,
 * as it would have without the recovery.
 */
export function annotateStaticPodManifest(text: string, fileName: string, run: string): { text: string; annotated: boolean } {
  if (/\.json$/i.test(fileName)) {
    try {
      const pod = JSON.parse(text) as { metadata?: { annotations?: Record<string, string> } };
      if (!pod || typeof pod !== 'object' || Array.isArray(pod)) return { text, annotated: false };
      pod.metadata = { ...(pod.metadata ?? {}), annotations: { ...(pod.metadata?.annotations ?? {}), [RECOVERY_ANNOTATION]: run } };
      return { text: `${JSON.stringify(pod, null, 2)}\n`, annotated: true };
    } catch {
      return { text, annotated: false };
    }
  }
  const doc = parseDocument(text);
  if (doc.errors.length || !doc.contents || !('items' in doc.contents) || Array.isArray(doc.toJS())) return { text, annotated: false };
  doc.setIn(['metadata', 'annotations', RECOVERY_ANNOTATION], run);
  // kubeadm's own style: sequences not indented under their key.
  return { text: doc.toString({ indentSeq: false }), annotated: true };
}

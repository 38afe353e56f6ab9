/** The conformance suite against this snapshotter, served by plugin-kit on both transports. */
import { runPluginSnapshotterSuites } from '@boxd/snapshotter-testsuite/plugin';
import { nativePlugin } from '../src/index.js';

runPluginSnapshotterSuites({ name: 'boxd native', plugin: nativePlugin(), snapshotter: 'boxd-native', mount: true });

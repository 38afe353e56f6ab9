/** The conformance suite against this snapshotter, served by plugin-kit on both transports. */
import { runPluginSnapshotterSuites } from '@boxd/snapshotter-testsuite/plugin';
import { overlayPlugin } from '../src/index.js';

runPluginSnapshotterSuites({ name: 'boxd overlay', plugin: overlayPlugin(), snapshotter: 'boxd-overlay', mount: true });

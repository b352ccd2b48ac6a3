/** The tus client suite against @tus/server with @tus/file-store, the reference tus server. */

import { startTusNodeServer } from './helpers.ts';
import { describeTusClient } from './tus-suite.ts';

describeTusClient('@tus/server', () => startTusNodeServer());

/** The tus client suite against Ferry (in-process, loopback). */

import { startFerry } from './helpers.ts';
import { describeTusClient } from './tus-suite.ts';

describeTusClient('Ferry', () => startFerry());

// The fallback -javaagent: it does nothing.
//
// LocalStack starts DynamoDB Local with `-javaagent:<...>/ddb-local-loader-0.1.jar`, a jar it normally downloads;
// the JVM will not start without it. `localstack.sh install` builds LoopbackAgent.java into that jar, and this class
// only when the JDK has no internal ASM for LoopbackAgent (e.g. JDK 24+); DynamoDB Local then binds every interface.
package workbook.localstack;

import java.lang.instrument.Instrumentation;

public final class NoopAgent {
    private NoopAgent() {}

    public static void premain(String args, Instrumentation instrumentation) {
        System.err.println("noop agent: DynamoDB Local binds every interface (no loopback agent for this JDK)");
    }
}

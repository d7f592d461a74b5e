// A -javaagent that does nothing.
//
// LocalStack starts DynamoDB Local with `-javaagent:<...>/ddb-local-loader-0.1.jar`, a jar it normally downloads
// (it lifts DynamoDB Local's limit of 20 global secondary indexes per table). That download cannot happen here, and
// the JVM refuses to start without the jar, so `localstack.sh install` compiles this class into a jar of that name.
// The only thing lost is the 20-GSI patch, which no notebook needs.
package workbook.localstack;

import java.lang.instrument.Instrumentation;

public final class NoopAgent {
    private NoopAgent() {}

    public static void premain(String args, Instrumentation instrumentation) {
        // intentionally empty
    }
}

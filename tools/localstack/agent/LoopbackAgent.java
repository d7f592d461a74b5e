// The -javaagent LocalStack puts on DynamoDB Local's command line, made from source here.
//
// LocalStack starts DynamoDB Local with `-javaagent:<...>/ddb-local-loader-0.1.jar`, a jar it normally downloads
// (its patch lifts DynamoDB Local's limit of 20 global secondary indexes per table). That download cannot happen
// here and the JVM will not start without the jar, so `localstack.sh install` compiles this class into a jar of
// that name. It does not lift the GSI limit (no notebook needs 20 GSIs). It does one thing instead: DynamoDB Local
// has no option for its listen address and binds every interface (Jetty `new Server(port)`), so this agent makes
// Jetty's `AbstractNetworkConnector.getHost()` answer 127.0.0.1 (or the agent argument) when no host was set.
//
// It uses the ASM copy inside the JDK (java.base's jdk.internal.org.objectweb.asm, present in JDK 17 and 21),
// exported to this agent at run time with Instrumentation.redefineModule. On a JDK without it the install falls
// back to NoopAgent.java; if anything fails at run time the agent prints a warning and DynamoDB Local starts as usual.
package workbook.localstack;

import java.lang.instrument.ClassFileTransformer;
import java.lang.instrument.Instrumentation;
import java.security.ProtectionDomain;
import java.util.Map;
import java.util.Set;

import jdk.internal.org.objectweb.asm.ClassReader;
import jdk.internal.org.objectweb.asm.ClassVisitor;
import jdk.internal.org.objectweb.asm.ClassWriter;
import jdk.internal.org.objectweb.asm.Label;
import jdk.internal.org.objectweb.asm.MethodVisitor;
import jdk.internal.org.objectweb.asm.Opcodes;

public final class LoopbackAgent {
    static final String TARGET = "org/eclipse/jetty/server/AbstractNetworkConnector";
    static final String ASM_PACKAGE = "jdk.internal.org.objectweb.asm";

    private LoopbackAgent() {}

    public static void premain(String args, Instrumentation instrumentation) {
        String host = (args == null || args.isBlank()) ? "127.0.0.1" : args.strip();
        try {
            Module javaBase = Object.class.getModule();
            instrumentation.redefineModule(javaBase, Set.of(),
                    Map.of(ASM_PACKAGE, Set.of(LoopbackAgent.class.getModule())), Map.of(), Set.of(), Map.of());
            instrumentation.addTransformer(new DefaultHost(host));
        } catch (Throwable error) {
            System.err.println("loopback agent: not active, DynamoDB Local binds every interface: " + error);
        }
    }

    /** Rewrites {@code return _host;} in getHost() into {@code return _host != null ? _host : "<host>";}. */
    static final class DefaultHost implements ClassFileTransformer {
        private final String host;

        DefaultHost(String host) {
            this.host = host;
        }

        @Override
        public byte[] transform(ClassLoader loader, String className, Class<?> redefined, ProtectionDomain domain,
                byte[] classfile) {
            if (!TARGET.equals(className)) {
                return null;
            }
            try {
                ClassReader reader = new ClassReader(classfile);
                ClassWriter writer = new ClassWriter(reader, ClassWriter.COMPUTE_MAXS);
                boolean[] patched = {false};
                reader.accept(new ClassVisitor(Opcodes.ASM8, writer) {
                    @Override
                    public MethodVisitor visitMethod(int access, String name, String descriptor, String signature,
                            String[] exceptions) {
                        MethodVisitor next = super.visitMethod(access, name, descriptor, signature, exceptions);
                        if (!"getHost".equals(name) || !"()Ljava/lang/String;".equals(descriptor)) {
                            return next;
                        }
                        patched[0] = true;
                        return new MethodVisitor(Opcodes.ASM8, next) {
                            @Override
                            public void visitInsn(int opcode) {
                                if (opcode == Opcodes.ARETURN) {
                                    Label done = new Label();
                                    super.visitInsn(Opcodes.DUP);
                                    super.visitJumpInsn(Opcodes.IFNONNULL, done);
                                    super.visitInsn(Opcodes.POP);
                                    super.visitLdcInsn(host);
                                    super.visitLabel(done);
                                    super.visitFrame(Opcodes.F_SAME1, 0, null, 1, new Object[] {"java/lang/String"});
                                }
                                super.visitInsn(opcode);
                            }
                        };
                    }
                }, 0);
                if (!patched[0]) {
                    System.err.println("loopback agent: no getHost() in " + className + "; binding unchanged");
                    return null;
                }
                System.err.println("loopback agent: Jetty connectors without a host bind " + host);
                return writer.toByteArray();
            } catch (Throwable error) {
                System.err.println("loopback agent: could not patch " + className + ": " + error);
                return null;
            }
        }
    }
}

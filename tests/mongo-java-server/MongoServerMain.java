// Standalone launcher for mongo-java-server (in-memory backend) on a chosen address.
// The library's own main (de.bwaldvogel.mongo.InMemoryMongoServer) hard-codes localhost:27017.
//
// Run (Java 11+ single-file source launch, no javac step):
//   java -cp '/work/main/.prereqs/mongo-java-server/*' MongoServerMain.java 127.0.0.1 27017
// Prints "listening on HOST:PORT" once the socket is bound, then blocks until killed
// (SIGTERM/SIGINT run a shutdown hook that closes the server).
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

public class MongoServerMain {
    public static void main(String[] args) throws Exception {
        String host = args.length > 0 ? args[0] : "127.0.0.1";
        int port = args.length > 1 ? Integer.parseInt(args[1]) : 27017;
        MongoServer server = new MongoServer(new MemoryBackend());
        try {
            server.bind(host, port);
        } catch (Exception e) { // Netty rethrows BindException (checked) without declaring it
            // MongoServer.bind leaves its Netty boss thread running after a failed bind (e.g. port in
            // use), which kept the JVM alive forever: exit explicitly.
            System.err.println("MongoServerMain: cannot listen on " + host + ":" + port + ": " + e);
            System.exit(1);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));
        System.out.println("listening on " + host + ":" + port);
        System.out.flush();
        Thread.currentThread().join(); // block forever
    }
}
